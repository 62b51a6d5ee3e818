"""Random models for tests, benchmarks and the GPU scripts: tiny ones and the 8B shapes."""
