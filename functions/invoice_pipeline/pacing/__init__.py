"""What a model call may take: the shared token and request budget per model (``benchmarking.model_budgets``)
and each model family's image-token rule, by which a call's tokens are estimated before it is made.

May import tables, reading, documents and the core; never the providers or the flows.
"""
