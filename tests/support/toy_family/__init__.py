"""A toy generator family, copied into a project's ``latentlab/families/toy/`` by the test that
adds a family with no edit outside its folder (tests/test_families.py)."""

from latentlab.families.toy.params import ToyBlock

from latentlab.families import Family, register

register(Family("toy", "Toy", ToyBlock, "generator.keras", low_recall="it is a toy",
                history=("loss",)), __name__)
