"""Sentence embedders (the `Embedder` port): all-MiniLM-L6-v2 on onnxruntime by default."""
