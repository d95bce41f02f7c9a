"""Train: fit and compare retention models on the dataset built on the Data page."""
from __future__ import annotations

from ui import components

components.page_header("Train", ":material/model_training:",
                       "Train several retention models on your dataset and compare them on a leaderboard.")
components.dataset_status()
components.coming_next([
    "pick the models to compare (simple baselines, gradient boosting, neural sequence models) or let the product choose",
    "train them with a validation that respects time (the latest snapshot) or stratified folds for user tables",
    "follow the progress and read the leaderboard (ROC-AUC, PR-AUC, F1) to pick the best model",
])
