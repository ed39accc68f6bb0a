"""Operations: health, the health task, metrics, the HTTP endpoint, logs and automatic recovery."""
