"""``latentlab sample`` on a diffusion model: DDIM with the card's steps, eta and guidance
unless the flags say otherwise, or ``--denoising``: a GIF of one sample step by step."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from latentlab.cli import save_gif, write_images
from latentlab.errors import UserError
from latentlab.families.diffusion.model import denoiser_call, generate
from latentlab.galleries import to_uint8


def sample(model, card, args: argparse.Namespace, out: Path) -> list[Path]:
    if args.interpolate:
        raise UserError("--interpolate walks a GAN's or a VAE's latent space; a diffusion "
                        "model shows its sampling with --denoising")
    if args.denoising:
        args.n = 1
        _, frames = diffuse(model, card, args, trajectory=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        save_gif(frames, out, [120] * (len(frames) - 1) + [1500], back=False)  # end held
        return [out]
    return write_images(diffuse(model, card, args), args, out)


def diffuse(model, card, args: argparse.Namespace, trajectory: bool = False):
    """uint8 images a diffusion model makes by DDIM (the card's steps, eta and guidance unless
    ``args`` says otherwise); with ``trajectory``, also the first one from its noise through
    every step."""
    labels, n_classes = None, len(card.classes or ())
    if args.label is not None or args.guidance is not None:
        if not n_classes:
            flag = "--label" if args.label is not None else "--guidance"
            raise UserError(f"{flag}: this model is not class-conditional; leave {flag} out")
    if args.label is not None:
        try:
            labels = np.full(args.n, card.label(args.label))
        except ValueError as exc:
            raise UserError(str(exc)) from None
    if args.eta is not None and not 0.0 <= args.eta <= 1.0:
        raise UserError(f"--eta {args.eta}: give a value from 0 (DDIM) to 1 (DDPM)")
    if args.guidance is not None and args.guidance < 0:
        raise UserError(f"--guidance {args.guidance}: give 0 (unconditional) or more")
    result = generate(denoiser_call(model), tuple(card.image_shape), args.n,
                                args.seed, card.sampler, labels=labels, n_classes=n_classes,
                                steps=args.steps, eta=args.eta, guidance=args.guidance,
                                trajectory=trajectory)
    if trajectory:  # the first sample's
        return to_uint8(card.to_unit(result[0])), to_uint8(card.to_unit(result[1][:, 0]))
    return to_uint8(card.to_unit(result))


