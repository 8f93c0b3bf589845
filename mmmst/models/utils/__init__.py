import importlib
import sys

from ..masking import *  # noqa: F401,F403  (the mask generators' former home)
from ..masking import __all__  # noqa: F401

# their former module paths name the same modules
for _old, _new in (('masking', 'attention_guided'), ('related_masks', 'related')):
    sys.modules[f'{__name__}.{_old}'] = importlib.import_module(f'mmmst.models.masking.{_new}')
