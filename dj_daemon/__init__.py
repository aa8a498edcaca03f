"""dj-daemon: database-backed background jobs, in the spirit of Ruby's delayed_job."""
from . import lifecycle
from .api import (
    Queue, cancel, configure, default_queue, delay, enqueue, enqueue_many, job, prepare,
)
from .cancel import JobCancelled, cancelled
from .config import Config, load_config
from .errors import DJError, DeserializationError, EnqueueError

__all__ = [
    "lifecycle", "Queue", "cancel", "cancelled", "JobCancelled", "configure", "default_queue", "delay", "enqueue", "enqueue_many", "job", "prepare",
    "Config", "load_config", "DJError", "DeserializationError", "EnqueueError",
]
