"""Worked examples of using raftcluster as a library (each a package: `examples.bank`)."""
