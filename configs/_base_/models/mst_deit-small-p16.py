# MST with DeiT-S/16. Every MST-specific default lives here, with its source.
model = dict(
    type='MST',
    backbone=dict(type='MSTViT', arch='deit-small', img_size=224, patch_size=16, drop_path_rate=0.1),  # DINO
    neck=dict(
        type='DINONeck',
        in_channels=384,
        out_channels=65536,  # DINO: K prototypes
        hidden_channels=2048,  # DINO
        bottleneck_channels=256,  # DINO
        num_layers=3,  # DINO
        norm_last_layer=False,  # DINO, ViT-S
    ),
    head=dict(
        type='DINOHead',
        out_channels=65536,
        student_temp=0.1,  # DINO
        teacher_temp=0.07,  # DINO, ViT-S
        warmup_teacher_temp=0.04,  # DINO
        warmup_teacher_temp_epochs=30,  # DINO
        center_momentum=0.9,  # DINO
    ),
    # paper §3.2 / table 5: num 8; prob chosen here (docs/design.md: the paper does not give it)
    mask_generator=dict(type='AttentionGuidedMaskGenerator', num=8, prob=0.5),
    # paper §3.3; loss_weight (lambda), widths, L1 chosen here (docs/design.md)
    decoder=dict(type='MSTDecoder', in_channels=384, stride=16, min_channels=32, loss_weight=1.0),
    teacher_momentum=0.996,  # DINO, cosine to 1
)
