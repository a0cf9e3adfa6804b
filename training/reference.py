"""The reference distributions a model is stored with: its training rows and scores.

Features are binned from the training split (the rows the model learned
from); the score from the out-of-fold probabilities that also choose the
threshold, because live customers are unseen ones and the fitted model's
in-sample scores would be more extreme than anything it will serve.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from churn_features.encoding import records_to_codes
from churn_features.reference import ReferenceDistributions, reference_from_codes
from churn_features.schema import FEATURE_ORDER


def training_reference(
    features: pd.DataFrame, out_of_fold: NDArray[np.float64]
) -> ReferenceDistributions:
    """References from the training split's features and its out-of-fold scores."""
    # The same schema codes the services bin live requests by, so training and
    # serving cannot disagree on what a category's bin is.
    records = features[list(FEATURE_ORDER)].to_dict("records")
    return reference_from_codes(records_to_codes(records), out_of_fold)
