"""What Qiskit Runtime's local testing mode costs per circuit, for `qattn ibm` trials on fake devices.

    python benchmarks/ibm_local.py                      # 1000 fidelity circuits, 4 qubits, 256 shots, fake_manila
    python benchmarks/ibm_local.py --circuits 2000 --kind z

Runs one stage's Estimator pub (the same ISA program `qattn ibm submit` sends) at random angles on
the fake device: with its noise at resilience level 0, at level 1 (readout mitigation: measurement
twirling and calibration), and noiselessly (`--ideal`). Prints seconds per circuit and the ratio to
level 0, measured in one run.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from qattn.circuits import AngleEncoding, FeatureMap, HardwareEfficient
from qattn.ibm.journal import Options
from qattn.runtime.devices import resolve_device
from qattn.runtime.programs import build_program


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--circuits", type=int, default=1000)
    parser.add_argument("--qubits", type=int, default=4)
    parser.add_argument("--shots", type=int, default=256)
    parser.add_argument("--kind", choices=["fidelity", "z"], default="fidelity")
    parser.add_argument("--backend", default="fake_manila")
    args = parser.parse_args()

    from qiskit_ibm_runtime.executor_estimator import Estimator

    fmap = FeatureMap(AngleEncoding("RY"), HardwareEfficient(), n_qubits=args.qubits)
    slots = sum(g.angle is not None for g in fmap.gates(np.zeros(fmap.input_size), np.zeros(fmap.weight_shape)))
    angles = np.random.default_rng(0).uniform(0, np.pi, (args.circuits, slots * (2 if args.kind == "fidelity" else 1)))
    cases = {"noisy, resilience level 0": (0, False), "noisy, resilience level 1": (1, False), "ideal, resilience level 0": (0, True)}
    print(f"{args.circuits} {args.kind} circuits, {args.qubits} qubits, {args.shots} shots, {args.backend} (local testing mode)")
    print(f"{'case':<28} {'s':>8} {'ms/circuit':>11} {'ratio':>7}")
    base = None
    for case, (level, ideal) in cases.items():
        device = resolve_device(args.backend, ideal=ideal)
        program = build_program(fmap, args.kind, device.backend)
        options = Options(shots=args.shots, resilience_level=level, seed_simulator=1).estimator_options(local=True)
        estimator = Estimator(mode=device.mode, options=options)
        start = time.perf_counter()
        estimator.run([program.pub(angles)]).result()
        seconds = time.perf_counter() - start
        base = base or seconds
        print(f"{case:<28} {seconds:>8.1f} {1000 * seconds / args.circuits:>11.2f} {seconds / base:>6.2f}x")


if __name__ == "__main__":
    main()
