"""Exception types shared across modules.

Every error an operator or application can cause derives from ``DJError`` so
the CLIs can print it as one line and exit non-zero, never as a traceback.
"""
import signal


class DJError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(DJError):
    """The configuration file, environment or flags are invalid."""


class EnqueueError(DJError):
    """A job was refused at enqueue: bad target, disallowed module, bad arguments."""


class DeserializationError(DJError):
    """A stored handler cannot be turned back into something to run.

    Raised for malformed JSON, unknown or disallowed targets and deleted
    records. The worker fails the job for good: retrying cannot fix it.
    """


class DefectiveJob(DJError):
    """A row holds a value its column cannot mean (``Job.defect``): failed for good unrun."""


class DatabaseError(DJError):
    """The database is unreachable or refused us; the message hides passwords.

    ``permanent`` when waiting cannot help (no such table or database, access
    denied): a run meant to end (``workoff``) then stops at once instead of
    waiting out what looks like an outage.
    """

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class WorkerError(DJError):
    """A worker cannot run as asked (e.g. outside the main thread, where SIGALRM cannot reach it)."""


class UnknownJobError(DJError):
    """No job has the id an operator asked for."""


class JobTimeout(BaseException):
    """A job ran past its max run time.

    A BaseException so that a job's own ``except Exception`` cannot swallow it.
    """


class WorkerInterrupted(BaseException):
    """The worker was told to stop now (second Ctrl-C); the job in hand is released."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum
