"""Small end-to-end experiments on the CPU (the demo and the mask-strategy ablation)."""
