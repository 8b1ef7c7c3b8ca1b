"""Card reader adapters: PC/SC (pyscard), nfcpy, and the pure parsing they share."""
