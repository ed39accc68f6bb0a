"""The order the suite's tests start in, so that its wall time is not a long tail.

Under pytest-xdist with ``--maxschedchunk 1`` a worker is handed its next test only when it
has fewer than two waiting, so the tests that take longest start first, on whichever worker is
free, and the short ones fill in around them (started last, one 40-second test would end the
run alone on one worker). The ``alone`` tests go last: each waits until every running test has
ended, and at the end of the run those are short ones. Everything else keeps pytest's order.

``SLOWEST`` names the test functions (every parametrization of each) that took 4 s or more in a
whole-suite run on 2 cores (``--durations``), slowest first by their latest run in four workers
(setup included: the first test of the report pays for its shared run), then those that were
4 s or more only in earlier runs (compute-bound tests, such as an hour of MockClock, stretch most
when workers share the cores). A test missing from it only starts later; refresh it when the
slow tests change. The order never selects or skips a test, and it
is the same in every worker (xdist requires that).
"""

from __future__ import annotations

import pytest

from .alone import MARK

SLOWEST: tuple[str, ...] = (
    "test_pairs_that_move_between_shards_are_harvested_once_per_venue",
    "test_a_symbol_that_moves_between_shards_is_harvested_once_and_never_dropped",
    "test_sigkill_at_random_moments_loses_at_most_the_fsync_window_and_records_it",
    "test_report_renders_its_plots_with_no_console_error",
    "test_the_quick_start_runs_as_written",
    "test_a_run_follows_the_simulators_listing_changes",
    "test_two_workers_split_the_pairs_of_two_venues_and_write_each_trade_once",
    "test_rows_lost_then_backfilled_then_killed_are_written_once_by_the_replay",
    "test_bybit_conserves_trades_and_chains_books_under_faults",
    "test_sigkill_of_a_diff_book_run_writes_every_book_row_once_and_unbroken",
    "test_workers_outlive_the_thread_cache_and_a_killed_one_alone_is_restarted",
    "test_a_restart_after_sigkill_on_s3_replays_each_row_once",
    "test_run_recovers_the_deadletter_once_writes_succeed_again",
    "test_run_sim_config_three_venues_exits_0",
    "test_fault1_hour_of_failing_writes_stays_bounded_and_loses_nothing",
    "test_a_killed_worker_of_two_venues_replays_each_venues_journal_once",
    "test_bybit_linear_writes_derivatives_and_liquidations",
    "test_a_futures_venue_writes_derivatives_and_liquidations",
    "test_a_shard_follows_only_its_share_even_from_an_empty_start",
    "test_okx_swap_writes_derivatives_and_liquidations_with_gaps",
    "test_a_restart_with_fewer_symbols_writes_the_journaled_rows_of_the_dropped_one",
    "test_a_stall_writes_gap_rows_for_the_mark_price_and_liquidation_streams",
    "test_a_killed_bybit_run_replays_its_tickers_and_liquidations_once",
    "test_a_killed_run_of_three_venues_replays_each_venues_frames_into_its_own_venue",
    "test_a_killed_run_replays_its_derivatives_and_liquidations_once",
    "test_a_diff_book_run_writes_book_updates_that_rebuild_its_quotes",
    "test_run_sim_venue_exits_0_and_writes_the_venues_symbols",
    "test_live_page_in_a_real_browser",
    "test_a_killed_okx_run_replays_its_journal_once_in_base_sizes",
    "test_a_killed_supervisors_workers_flush_and_exit_cleanly",
    "test_okx_conserves_trades_and_chains_books_under_faults",
    "test_compaction_keeps_pace_with_rotation_for_many_rounds",
    "test_rows_the_dead_letter_refuses_at_a_stop_are_written_by_the_next_start",
    "test_many_stale_connections_get_reconnects_on_a_budget_not_a_storm",
    "test_an_owner_cut_off_fences_itself_and_a_contender_waits_for_the_expiry",
    "test_a_restart_without_a_symbol_still_writes_its_journaled_book_rows",
    "test_run_sim_bybit_exits_0",
    "test_linear_serves_tickers_and_liquidations_spot_neither",
    "test_a_symbol_the_venue_does_not_list_gets_one_warning",
    "test_run_with_two_workers_end_to_end",
    "test_a_crash_replays_the_diff_books_rows_once_even_when_run_twice",
    "test_summary_is_per_kind_for_many_symbols_and_per_symbol_on_request",
    "test_mistakes_get_suggestions",
    "test_rerunning_the_simulator_into_the_same_data_dir_warns",
    "test_recover_and_inspect_work_on_s3_from_the_command_line",
    "test_sigkilled_compactions_on_s3_leave_every_row_once",
    "test_without_pings_the_quiet_socket_is_cut",
    "test_the_harvesters_ping_keeps_a_quiet_socket_open",
    "test_near_journal_max_bytes_the_lanes_holding_it_back_are_flushed",
    "test_a_book_whose_snapshot_left_the_journal_is_rebuilt_from_its_journaled_state",
    "test_server_down_dead_letters_and_503_then_recovery_empties_it",
    "test_a_run_that_never_receives_a_frame_says_why_and_exits_3",
    "test_a_journal_without_book_records_replays_as_before",
    "test_segments_are_deleted_as_rows_become_durable",
    "test_scans_race_a_compaction_that_sweeps_many_partitions",
    "test_a_run_whose_puts_lose_their_replies_writes_each_row_once",
    "test_run_sim_okx_exits_0",
    "test_a_harvester_reading_depth_in_batches_writes_the_rows_of_one_computing_each_message",
    "test_progress_lines_between_connected_and_stopping",
    "test_help_shows_no_argparse_defaults",
    "test_replay_messages_are_log_lines",
    "test_replay_of_a_live_runs_raw_archive_gives_the_same_rows",
    "test_metrics_and_status_stay_small_at_500_symbols",
    "test_chaos",
    "test_harvest_from_simulator_end_to_end",
    "test_restart_replays_what_memory_held_exactly_once_even_when_run_twice",
    "test_ctrl_c_at_any_moment_ends_with_one_line_never_a_traceback",
    "test_harvester_hands_over_before_the_simulator_closes",
    "test_each_venue_conserves_its_own_tape_in_one_dataset",
    "test_a_redone_recovery_never_brings_back_a_merged_file",
    "test_the_default_simulator_cadence_does_not_thin_out_with_the_symbol_count",
    "test_faults_apply_to_each_venue_and_each_repairs_on_its_own",
    "test_a_venue_conserves_every_trade_under_faults",
    "test_a_failing_connection_never_takes_down_another",
    "test_feature_rows_match_the_plain_reference",
    "test_a_second_ctrl_c_logs_one_line",
    "test_a_backlog_is_named_at_start_and_in_the_summary_with_the_command",
    "test_aws_endpoint_and_allow_http_variables_work_like_in_every_s3_tool",
    "test_the_raw_archive_of_three_venues_replays_to_the_live_dataset",
    "test_recover_and_inspect_take_the_runs_config",
)
_RANK = {name: i for i, name in enumerate(SLOWEST)}


def _key(item: pytest.Item) -> tuple[int, int]:
    if item.get_closest_marker(MARK) is not None:
        return (2, 0)
    rank = _RANK.get(getattr(item, "originalname", item.name))
    return (1, 0) if rank is None else (0, rank)


def slowest_first(items: list[pytest.Item]) -> None:
    """Reorder ``items`` in place: the known slow tests slowest first, then the rest in
    pytest's order, then the ``alone`` ones (a stable sort: ties keep their order)."""
    items.sort(key=_key)
