"""qualflow's library: pure Python over numpy, spaCy and scikit-learn.

Nothing here imports prefect or mlflow, and nothing runs at import time.
"""

__version__ = "0.1.0"
