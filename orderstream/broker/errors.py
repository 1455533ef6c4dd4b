"""Errors of the broker edge. Each message is one line that says what to install or change."""


class BrokerError(RuntimeError):
    """The broker could not be fetched, started, stopped or reached."""
