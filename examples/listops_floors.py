"""What a model must beat on ListOps before attention can be said to read it: two rules that need no network.

ListOps' label is the value of a nested expression, ``[MAX 2 9 [MIN 4 7 ] 0 ] -> 9``. Two rules read
almost nothing of it:

- **the most frequent class**: one answer for every sequence (the most frequent value in train);
- **the outermost operator**: the most frequent training value per first token (``[MAX`` -> 9, ``[MIN`` -> 0,
  ...), one token of hundreds.

A model at the second rule's accuracy has learned the first token and nothing of the nesting. The script
prints both on the ListOps a config generates (``experiments/listops.toml`` by default), on dev and test.

    python examples/listops_floors.py                                  # the machine-sized ListOps (seconds)
    python examples/listops_floors.py --set data.listops.train_docs=500 ...
"""

import argparse
from collections import Counter, defaultdict
from pathlib import Path

from qattn.config import load_config
from qattn.data import load_dataset

LISTOPS = Path(__file__).resolve().parents[1] / "experiments" / "listops.toml"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=LISTOPS)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, as `qattn train --set`")
    args = parser.parse_args(argv)
    data = load_dataset(load_config(args.config, args.overrides).data)

    most_frequent = Counter(data.train.labels).most_common(1)[0][0]
    by_operator: dict[str, Counter] = defaultdict(Counter)
    for text, label in zip(data.train.texts, data.train.labels):
        by_operator[text.split()[0]][label] += 1
    operator_rule = {operator: counts.most_common(1)[0][0] for operator, counts in by_operator.items()}
    rules = {
        "most frequent class": lambda text: most_frequent,
        "outermost operator": lambda text: operator_rule.get(text.split()[0], most_frequent),
    }
    print(f"ListOps: {len(data.train):,} training, {len(data.dev):,} dev, {len(data.test):,} test sequences")
    print("outermost operator -> its most frequent training value: "
          + ", ".join(f"{operator} -> {value}" for operator, value in sorted(operator_rule.items())))
    print(f"{'rule':<22}{'dev accuracy [%]':>18}{'test accuracy [%]':>19}")
    for name, rule in rules.items():
        scores = [100 * sum(rule(text) == label for text, label in zip(split.texts, split.labels)) / len(split)
                  for split in (data.dev, data.test)]
        print(f"{name:<22}{scores[0]:>18.2f}{scores[1]:>19.2f}")


if __name__ == "__main__":
    main()
