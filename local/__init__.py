"""Stand-ins that run the whole pipeline on one machine: never imported by ``functions/``."""
