"""Train the two churn models, evaluate them and save them to the BentoML store.

Entry points: ``python -m training`` / ``churn-train`` (see ``training.cli``)
and ``training.train.train_and_save`` for test fixtures. Importing this package
is cheap: BentoML is only imported when a model is saved.
"""
