"""The ``invoices`` operator command: works against real AWS and the local stack alike."""
