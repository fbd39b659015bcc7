"""python manage.py evaluate : agreement of a model version with people on held-out triplets,
beside every baseline; prints a summary line and then the JSON report. With --transitions:
the transition model's continuation test on held-out tracks beside mel-stats and chance."""

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from training import services
from training.evaluation import model_evaluate
from training.models import TRANSITION_MODEL, ModelVersion
from training.transition_services import transition_evaluate


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _difference(r: dict) -> str:
    """The paired difference of the two weightings, when there is one."""
    if r.get("reliability_minus_equal") is None:
        return ""
    low, high = r["reliability_minus_equal_ci"]
    return (
        f" (difference {r['reliability_minus_equal']:+.3f} [{low:+.3f}, {high:+.3f}]; "
        f"the two choose differently on {r['weightings_differ_n']})"
    )


class Command(BaseCommand):
    help = "Evaluate a model version (default: the newest oddnet) on held-out test triplets."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--model-version",
            help="version number or space, e.g. 3 or transnet@3 (default: newest)",
        )
        parser.add_argument(
            "--name", default=services.MODEL_NAME, help="model name, e.g. oddnet-pretrained"
        )
        parser.add_argument("--mel-stats", action="store_true", help="Evaluate mel-stats alone.")
        parser.add_argument(
            "--transitions",
            action="store_true",
            help="evaluate the transition model (transnet) on held-out tracks",
        )

    def handle(self, *args: object, **options: object) -> None:
        name = TRANSITION_MODEL if options["transitions"] else options["name"]
        version = None
        if not options["mel_stats"] or options["transitions"]:
            version = self._version(name, options["model_version"])
        if version is not None and version.name == TRANSITION_MODEL:
            self._transitions(version)
            return
        try:
            evaluation = model_evaluate(version)
        except ValueError as e:
            raise CommandError(str(e)) from e
        r = evaluation.results
        self.stdout.write(
            f"{r['model']}: agreement {r['agreement']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
            f" on {r['n_triplets']} held-out triplets ({r['n_votes']} votes); "
            f"mel-stats {_fmt(r['mel_stats'])}, pretrained {_fmt(r['pretrained'])}, "
            f"BEATs {_fmt(r['beats_mean'])} ({r['beats_status']}), "
            f"previous {_fmt(r['previous_promoted'])}, random {r['random']:.3f}, "
            f"human ceiling {_fmt(r['ceiling'])}; honest majority "
            f"{_fmt(r['honest_majority_agreement'])} ({r['weighting']} weights), equal weights "
            f"{_fmt(r['equal_weights_honest_majority_agreement'])} vs reliability weights "
            f"{_fmt(r['reliability_weights_honest_majority_agreement'])} on "
            f"{r['equal_weights_n']} triplets{_difference(r)}"
        )
        self.stdout.write(json.dumps(r))

    def _version(self, name: str, wanted: str | None) -> ModelVersion:
        versions = ModelVersion.objects.filter(name=name).order_by("-version")
        if wanted:
            space_name, _, number = wanted.rpartition("@")
            if space_name and space_name != name:
                raise CommandError(f"--model-version {wanted} is not a {name} version")
            if not number.isdigit():
                raise CommandError(f"--model-version {wanted}: give a number or {name}@N")
            versions = versions.filter(version=int(number))
        version = versions.first()
        if version is None:
            how = "train --transitions" if name == TRANSITION_MODEL else "train"
            which = wanted or "any"
            raise CommandError(f"no {name} version ({which}) to evaluate; run `{how}` first")
        return version

    def _transitions(self, version: ModelVersion) -> None:
        bar = tqdm(desc="held-out tracks", unit="track")

        def progress(record: dict) -> None:
            bar.total = record.get("steps")
            bar.update(int(record.get("step", 0)) - bar.n)

        try:
            evaluation = transition_evaluate(version, progress)
        except ValueError as e:
            raise CommandError(str(e)) from e
        finally:
            bar.close()
        r = evaluation.results
        self.stdout.write(
            f"{r['space']}: recall@1 {r['model']['recall_at_1']:.3f}, recall@10 "
            f"{r['model']['recall_at_10']:.3f} of the true continuation among "
            f"{r['candidates']} candidates; mel-stats {r['melstats']['recall_at_1']:.3f} / "
            f"{r['melstats']['recall_at_10']:.3f}; chance {r['chance']['recall_at_1']:.3f} / "
            f"{r['chance']['recall_at_10']:.3f}; {r['seams']} seams of "
            f"{r['held_out_tracks']} held-out tracks; Spearman with people "
            f"{_fmt(r['spearman']['model'])} (mel-stats {_fmt(r['spearman']['melstats'])}, "
            f"{r['spearman']['n']} rated pairs)"
        )
        self.stdout.write(json.dumps(r))
