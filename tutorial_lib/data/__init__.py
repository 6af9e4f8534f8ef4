"""The Kang et al. 2018 IFN-beta PBMC data: loading, harmonising, preprocessing, hold-out splits."""

from tutorial_lib.data.checks import DataValidationError
from tutorial_lib.data.kang import harmonise, load_kang2018
from tutorial_lib.data.split import (
    assign_donor_holdout,
    assign_holdout,
    normalise_log,
    prepare_holdout,
    select_hvg,
    split_views,
    subsample_stimulated,
)

__all__ = ["DataValidationError", "harmonise", "load_kang2018", "normalise_log", "select_hvg", "assign_holdout"]
__all__ += ["assign_donor_holdout", "prepare_holdout", "split_views", "subsample_stimulated"]
