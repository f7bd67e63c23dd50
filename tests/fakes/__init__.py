"""In-process fakes of external services that tests talk to over real sockets."""
