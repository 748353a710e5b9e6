"""Sentence embeddings: ``base`` (the protocol), one module per backend (``sentence_transformers``,
``onnx``), the cache (``cache``), and ``factory`` (backends by name). Import from the submodules."""
