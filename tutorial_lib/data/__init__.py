"""Data: fetching, harmonising, preprocessing and splitting the Kang et al. 2018 IFN-beta PBMCs."""

from tutorial_lib.data.checks import (
    CELL_TYPE_KEY,
    CONDITION_KEY,
    CONTROL,
    DONOR_KEY,
    STIMULATED,
    DataValidationError,
    check_counts,
    check_log_normalised,
    require_obs_keys,
)
from tutorial_lib.data.fetch import ChecksumError, DataUnavailableError, RemoteFile, fetch_file
from tutorial_lib.data.kang import KANG2018_RAW, harmonise, load_kang2018
from tutorial_lib.data.preprocess import normalise_log, select_hvg
from tutorial_lib.data.split import (
    SPLIT_KEY,
    assign_donor_holdout,
    assign_holdout,
    prepare_holdout,
    split_views,
    subsample_stimulated,
)

__all__ = [
    "CELL_TYPE_KEY",
    "CONDITION_KEY",
    "CONTROL",
    "DONOR_KEY",
    "STIMULATED",
    "SPLIT_KEY",
    "ChecksumError",
    "DataUnavailableError",
    "DataValidationError",
    "KANG2018_RAW",
    "RemoteFile",
    "assign_donor_holdout",
    "assign_holdout",
    "check_counts",
    "check_log_normalised",
    "fetch_file",
    "harmonise",
    "load_kang2018",
    "normalise_log",
    "prepare_holdout",
    "require_obs_keys",
    "select_hvg",
    "split_views",
    "subsample_stimulated",
]
