"""``python -m tutorial_lib.data`` (``make data``): fetch the Kang et al. 2018 data and summarise it."""

import pandas as pd

from tutorial_lib.data.checks import CELL_TYPE_KEY, CONDITION_KEY
from tutorial_lib.data.kang import load_kang2018

adata = load_kang2018()
print(adata, pd.crosstab(adata.obs[CELL_TYPE_KEY], adata.obs[CONDITION_KEY]), sep="\n")
