"""The sibling generators (JEANet, the prior-guided network, SRResNet), the --model registry, and the frozen feature networks (FaceNet, LPIPS) their losses and metrics use."""
