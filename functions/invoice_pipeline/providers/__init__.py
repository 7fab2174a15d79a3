"""The extractors: one module per provider (OpenAI, Bedrock, Textract, the offline OCR reader), the registry
that makes them, and what the providers share (the question asked, the answer's normalising, AWS errors).

May import pacing, tables, reading, documents and the core; never the flows. Each provider turns its SDK's
errors into the project's error types at its boundary.
"""
