"""Dataset release pages: /datasets/ for researchers (the releases, their datasheets and
files) and /curate/releases/ where curators cut them. Staff-facing, English only.

Downloads need the download_datasets permission (researchers and admins, annotation/roles.py);
curators cut releases and see their status, counts and checksums but do not hold it."""

from django import forms
from django.contrib import messages
from django.db import transaction
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from annotation import release_selectors as reads
from annotation.releases import MAX_MIN_VOTES, NOTES_MAX, TITLE_MAX, ReleaseError, release_start
from annotation.roles import curator_required, is_researcher, role_required
from annotation.tasks import release_cut

datasets_required = role_required(is_researcher)


def _release_or_404(number: int) -> object:
    release = reads.release_ready(number)
    if release is None:
        raise Http404(f"There is no finished release {number}.")
    return release


@datasets_required
def datasets(request: HttpRequest) -> HttpResponse:
    releases = [(r, reads.release_datasheet(r)) for r in reads.releases_ready()]
    return render(request, "annotation/datasets.html", {"releases": releases})


@datasets_required
def dataset(request: HttpRequest, number: int) -> HttpResponse:
    release = _release_or_404(number)
    context = {"release": release, "datasheet": reads.release_datasheet(release)}
    return render(request, "annotation/dataset.html", context)


@datasets_required
def dataset_file(request: HttpRequest, number: int, name: str) -> FileResponse:
    release = _release_or_404(number)
    path = reads.release_file(release, name)
    if path is None:
        raise Http404(f"Release {number} has no file {name!r}.")
    return FileResponse(path.open("rb"), as_attachment=True, filename=f"oddball-{number}-{name}")


class CutForm(forms.Form):
    title = forms.CharField(max_length=TITLE_MAX, required=False)
    notes = forms.CharField(
        max_length=NOTES_MAX,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Shown in the datasheet and kept in the audit log.",
    )
    min_votes = forms.IntegerField(
        min_value=0, max_value=MAX_MIN_VOTES, initial=1, help_text="Votes naming a slot."
    )
    min_reliability = forms.FloatField(
        min_value=0.0, max_value=1.0, required=False, help_text="Empty: any listener."
    )
    sources = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, help_text="None ticked: all."
    )
    licences = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, help_text="None ticked: all."
    )
    audio = forms.BooleanField(
        required=False, help_text="Also bundle the snippet audio of redistributable tracks."
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["sources"].choices = [(s, s) for s in reads.sources_in_use()]
        self.fields["licences"].choices = [(lic, lic) for lic in reads.licences_in_use()]


@curator_required
@require_http_methods(["GET", "POST"])
def curate_releases(request: HttpRequest) -> HttpResponse:
    """The releases with their status, and the form that cuts a new one (in a task)."""
    form = CutForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        filters = {k: data[k] for k in ("min_votes", "min_reliability", "sources", "licences")}
        filters["audio"] = data["audio"]
        try:
            with transaction.atomic():
                release = release_start(request.user, filters, data["title"], data["notes"])
                transaction.on_commit(lambda: release_cut.delay(release.id))
        except ReleaseError as e:
            messages.error(request, str(e))
        else:
            messages.success(request, f"Release {release.number} is being cut.")
            return redirect("curate-releases")
    context = {
        "form": form,
        "releases": reads.releases_all(),
        "building": reads.releases_building(),
    }
    return render(request, "curate/releases.html", context, status=400 if form.errors else 200)
