"""Device configuration: the schema every part meets at, its loader and its examples."""
