"""The Spark engine (``engine = "spark"``; ``pip install 'bundlewise[spark]'`` and Java 17).

Importing this package does not import pyspark: each function imports it when it runs.
"""
