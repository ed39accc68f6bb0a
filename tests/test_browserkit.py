"""The browser helper itself: it must see what it is there to see, or the page tests prove nothing."""

from __future__ import annotations

from pathlib import Path

from tests.browserkit import render


def test_a_clean_page_renders_with_no_errors_and_a_screenshot(tmp_path: Path) -> None:
    page = tmp_path / "ok.html"
    page.write_text("<html><body><h1 id='t'>hello</h1>"
                    "<script>document.getElementById('t').textContent += ' world'</script></body></html>")
    shot = tmp_path / "ok.png"
    seen = render(str(page), shot, settle=0.2, evaluate={"title": "document.getElementById('t').textContent"})
    assert seen.console_errors == []
    assert seen.values["title"] == "hello world"
    assert "hello world" in seen.dom
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_console_errors_and_uncaught_exceptions_are_reported(tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text("<html><body><script>console.error('boom'); undefinedFunction();</script>"
                    "<img src='http://198.51.100.1/never.png'></body></html>")
    seen = render(str(page), settle=0.5)
    text = "\n".join(seen.console_errors)
    assert "boom" in text
    assert "undefinedFunction" in text
