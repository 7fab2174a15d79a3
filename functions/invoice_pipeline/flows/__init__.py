"""The consumer's and the producer's work: one SQS record from claim to commit (``consume``), one producer run
from orders to messages (``enqueue``), and the queue calls they make (sending, visibility, depth).

May import every other room and the core; nothing in the package imports it (only the handlers,
``local/`` and the operator's CLI).
"""
