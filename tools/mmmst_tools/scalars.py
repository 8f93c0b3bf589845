"""Logged scalars of a run, read back from mmengine's ``vis_data/scalars.json``."""

import json
from typing import List, Tuple


def scalar_curve(scalars_json: str, key: str) -> List[Tuple[int, float]]:
    """(iteration, value) of one logged scalar; empty when the run never logged it."""
    rows = [json.loads(line) for line in open(scalars_json)]
    return [(r['step'], r[key]) for r in rows if key in r]
