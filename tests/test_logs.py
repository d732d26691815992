"""Log set-up: one per process, INFO lines from rank 0 only."""


def test_only_rank_0_logs_info_lines(monkeypatch):
    import logging

    from scaling_repro.logs import configure_logging

    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "8")
    configure_logging()
    assert logging.getLogger("scaling_repro").level == logging.WARNING
    monkeypatch.setenv("RANK", "0")
    configure_logging()
    assert logging.getLogger("scaling_repro").level == logging.INFO
