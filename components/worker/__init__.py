"""The spawner's Twisted process on each worker host: kernels, the pool, their channels, outputs and files."""
