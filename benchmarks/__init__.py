"""asv-style benchmarks of matkron; see README.md in this folder."""
