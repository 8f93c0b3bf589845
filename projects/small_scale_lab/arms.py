"""Arm names of the mask-strategy ablation and the config overrides each one stands for.

An arm is a base name followed by optional ``-<setting><value>`` parts:

    dino                 no mask, no decoder (DINO)
    random[-p<P>]        random mask, every patch with probability P (paper eq. 3; default 0.15)
    attention[-num<N>][-p<P>]   attention-guided mask, the lowest 1/N attention patches are candidates,
                         each masked with probability P (paper eq. 4-5; default num 8, p 0.5), no decoder
    mst[-num<N>][-p<P>]  attention-guided mask + decoder (full MST)
    high[-ratio<R>]      the most attended round(R N) patches masked (AttMask-High; default R = 0.1-0.5 per image)
    hint[-ratio<R>][-reveal<H>]   as high, each masked patch revealed again with probability H (AttMask-Hint;
                         default 0.1)
    block[-ratio<R>]     rectangles of patches up to R N (BEiT / iBOT; default R = 0.1-0.5 per image)

high, hint and block keep MST's decoder, so they compare mask strategies inside MST. On any arm: ``-lambda<L>``
(the decoder loss weight lambda, arms with a decoder), ``-warmup<E>`` (teacher-temperature warm-up epochs) and
``-lr<LR>`` (peak learning rate). Example: ``mst-num4-p0.9-lambda0.3``.
"""

import argparse
import re

# base arms and the defaults of their settings
BASE_ARMS = ('dino', 'random', 'attention', 'mst')
RELATED_ARMS = ('high', 'hint', 'block')  # the follow-up work's masks, inside MST
_SETTING = re.compile(r'(num|p|lambda|warmup|lr|ratio|reveal)(\d+(?:\.\d+)?)')  # lr as a decimal: lr0.001


def arm_overrides(name: str) -> dict:
    """Config overrides (a fresh dict) for an arm name such as ``mst-num4-p0.9-lambda0.3``; see the module docstring.

    Raises:
        ValueError: the name, or one of its settings, is not understood; the message names it.
    """
    base, *settings = name.split('-')
    if base not in BASE_ARMS + RELATED_ARMS:
        raise ValueError(f'arm {name!r}: the base must be one of {", ".join(BASE_ARMS + RELATED_ARMS)}, got {base!r}')
    values = {}
    for setting in settings:
        match = _SETTING.fullmatch(setting)
        if match is None or match.group(1) in values:
            raise ValueError(
                f'arm {name!r}: cannot read setting {setting!r} (num<int>, p<float>, lambda<float>, warmup<int>, '
                'lr<float>, ratio<float>, reveal<float>, each at most once)'
            )
        values[match.group(1)] = match.group(2)
    allowed = dict(
        dino={'warmup', 'lr'},
        random={'p', 'warmup', 'lr'},
        attention={'num', 'p', 'warmup', 'lr'},
        mst={'num', 'p', 'lambda', 'warmup', 'lr'},
        high={'ratio', 'lambda', 'warmup', 'lr'},
        hint={'ratio', 'reveal', 'lambda', 'warmup', 'lr'},
        block={'ratio', 'lambda', 'warmup', 'lr'},
    )
    extra = set(values) - allowed[base]
    if extra:
        raise ValueError(f'arm {name!r}: setting(s) {", ".join(sorted(extra))} do not apply to {base!r}')

    model = {}
    if base == 'dino':
        model.update(mask_generator=None, decoder=None)
    elif base == 'random':
        prob = float(values.get('p', 0.15))  # paper: random masking with p = 0.15
        model.update(mask_generator=dict(_delete_=True, type='RandomMaskGenerator', prob=prob), decoder=None)
    elif base in RELATED_ARMS:
        ratio = float(values['ratio']) if 'ratio' in values else (0.1, 0.5)
        generator = dict(_delete_=True, type='BlockMaskGenerator' if base == 'block' else 'HighAttentionMaskGenerator')
        generator['ratio'] = ratio
        if base == 'hint':
            generator['hint'] = float(values.get('reveal', 0.1))
        model['mask_generator'] = generator
        if 'lambda' in values:
            model['decoder'] = dict(loss_weight=float(values['lambda']))
    else:
        num, prob = int(values.get('num', 8)), float(values.get('p', 0.5))
        model['mask_generator'] = dict(type='AttentionGuidedMaskGenerator', num=num, prob=prob)
        if base == 'attention':
            model['decoder'] = None
        elif 'lambda' in values:
            model['decoder'] = dict(loss_weight=float(values['lambda']))
    if 'warmup' in values:
        model['head'] = dict(warmup_teacher_temp_epochs=int(values['warmup']))
    overrides = dict(model=model)
    if 'lr' in values:
        overrides['optim_wrapper'] = dict(optimizer=dict(lr=float(values['lr'])))
    return overrides


def arm_name(value: str) -> str:
    """argparse type: an arm name that :func:`arm_overrides` understands."""
    try:
        arm_overrides(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return value
