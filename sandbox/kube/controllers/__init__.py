"""The controllers of a simulated cluster, one module each, as mixins over ClusterBase."""
