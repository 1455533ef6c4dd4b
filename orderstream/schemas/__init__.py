"""The wire contract: Avro schemas (every version, in avro/), the catalog, the mapper, the codec and the checks.

Nothing is loaded at import time: build a Codec (or call default_catalog()) where the process starts.
"""
