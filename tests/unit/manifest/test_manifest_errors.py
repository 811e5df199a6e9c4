"""Loader errors: every problem located (file:line:col, field path) and explained."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from pinnace.api import object_pb2
from pinnace.manifest import ManifestError, from_dict, load_bytes, load_path, load_paths, load_text, locate

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: p
spec:
  containers:
  - name: c
    image: nginx
"""


def problems(text: str, filename: str = "m.yaml") -> str:
    with pytest.raises(ManifestError) as info:
        load_text(text, filename)
    return str(info.value)


def test_unknown_field_did_you_mean() -> None:
    text = problems(POD.replace("    image: nginx", "    image: nginx\n    imagePullPolicyy: Always"))
    assert "m.yaml:9:5: spec.containers[0].imagePullPolicyy: unknown field for Container" in text
    assert "did you mean 'imagePullPolicy'?" in text


def test_snake_case_and_wrong_case_suggest_camel_case() -> None:
    text = problems(POD.replace("  name: p", "  name: p\n  resource_version: '1'"))
    assert "did you mean 'resourceVersion'?" in text
    text = problems(POD.replace("    image: nginx", "    image: nginx\n    ImagePullPolicy: Always"))
    assert "did you mean 'imagePullPolicy'?" in text


@pytest.mark.parametrize(
    ("snippet", "field"),
    [
        ("    envFrom:\n    - configMapRef: {name: x}", "envFrom"),
        ("    resizePolicy:\n    - resourceName: cpu\n      restartPolicy: NotRequired", "resizePolicy"),
        ("    securityContext:\n      capabilities: {add: [NET_ADMIN]}", "capabilities"),
    ],
)
def test_known_but_unsupported_fields(snippet: str, field: str) -> None:
    text = problems(POD + snippet + "\n")
    assert f"field '{field}' of " in text and "is not supported yet by Pinnace" in text
    assert "did you mean" not in text


def test_configmap_volume_is_not_supported_yet() -> None:
    text = problems(POD + "  volumes:\n  - name: cfg\n    configMap:\n      name: cfg\n")
    assert "m.yaml:11:5: spec.volumes[0].configMap: field 'configMap' of Volume is not supported yet by Pinnace" in text


def test_all_problems_reported_not_just_first() -> None:
    text = problems(
        POD.replace("  name: p", "  name: p\n  lables: {a: b}").replace(
            "    image: nginx", "    image: 5\n    portz: []"
        )
    )
    assert len(text.splitlines()) == 3
    assert "metadata.lables" in text and "did you mean 'labels'" in text
    assert "spec.containers[0].image: expected text, got the number 5; quote it" in text
    assert "spec.containers[0].portz" in text


@pytest.mark.parametrize(
    ("snippet", "expect"),
    [
        ("    ports:\n    - containerPort: http", "expected a whole number, got the text"),
        ("    ports:\n    - containerPort: '80'", "remove the quotes"),
        ("    ports:\n    - containerPort: 1.5", "it must be a whole number"),
        ("    ports:\n    - containerPort: 99999999999", "out of range"),
        ("    stdin: yes please", "expected true or false"),
        ("    stdin: 'true'", "remove the quotes"),
        ("    command: sleep 10", 'expected a list, got the text "sleep 10"'),
        ("    env: {A: b}", "expected a list, got a mapping; start each item with '- '"),
        ("    resources: {limits: {cpu: lots}}", "'lots' is not a quantity"),
        ("    resources: {limits: {cpu: [1]}}", "expected a quantity"),
        ("    livenessProbe: {tcpSocket: {port: 1.5}}", "expected a whole number or a name"),
        ("    volumeMounts: [null]", "empty list item"),
    ],
)
def test_type_errors(snippet: str, expect: str) -> None:
    text = problems(POD + snippet + "\n")
    assert expect in text
    assert "m.yaml:9:" in text or "m.yaml:10:" in text


def test_label_values_must_be_text() -> None:
    text = problems(POD.replace("  name: p", "  name: p\n  labels:\n    version: 1.0"))
    assert 'metadata.labels[version]: expected text, got the number 1.0; quote it: "1.0"' in text


def test_duplicate_key() -> None:
    text = problems(POD.replace("    image: nginx", "    image: nginx\n    image: redis"))
    assert "m.yaml:9:5: spec.containers[0].image: duplicate field (first given on line 8)" in text


@pytest.mark.parametrize(
    ("char", "name", "fix"),
    [
        ("\u2010", "HYPHEN", "use '-' (U+002D)"),
        ("\u2011", "NON-BREAKING HYPHEN", "use '-' (U+002D)"),
        ("\u2012", "FIGURE DASH", "use '-' (U+002D)"),
        ("\u2013", "EN DASH", "use '-' (U+002D)"),
        ("\u2212", "MINUS SIGN", "use '-' (U+002D)"),
    ],
)
def test_lookalike_hyphens(char: str, name: str, fix: str) -> None:
    text = problems(POD.replace("  - name: c", f"  {char} name: c"))
    assert f"m.yaml:7:3: U+{ord(char):04X} {name} looks like '-'" in text
    assert fix in text


@pytest.mark.parametrize(
    ("old", "new", "where", "name"),
    [
        ("image: nginx", "image: \u201cnginx\u201d", "8:12", "LEFT DOUBLE QUOTATION MARK"),
        ("image: nginx", "image: \u2018nginx\u2019", "8:12", "LEFT SINGLE QUOTATION MARK"),
        ("image: nginx", "image\uff1a nginx", "8:10", "FULLWIDTH COLON"),
        ("image: nginx", "image:\u3000nginx", "8:11", "IDEOGRAPHIC SPACE"),
        ("image: nginx", "image:\u00a0nginx", "8:11", "NO-BREAK SPACE"),
    ],
)
def test_other_lookalikes(old: str, new: str, where: str, name: str) -> None:
    text = problems(POD.replace(old, new))
    assert f"m.yaml:{where}: U+" in text and name in text


def test_lookalikes_in_comments_and_quoted_text_are_fine() -> None:
    objs = load_text(
        POD.replace("  name: p", "  name: p  # the pod \u2013 \u201cp\u201d\n  annotations: {a: 'x\u2013y'}")
    )
    assert len(objs) == 1


def test_tab_indentation() -> None:
    text = problems(POD.replace("    image: nginx", "\timage: nginx"))
    assert "m.yaml:8:1:" in text and "tabs" in text


def test_block_end_indentation() -> None:
    text = problems("apiVersion: v1\nkind: Pod\nmetadata:\n    name: p\n  labels: {}\n")
    assert "m.yaml:5:3:" in text and "must line up" in text


def test_unclosed_quote() -> None:
    text = problems('apiVersion: v1\nkind: Pod\nmetadata:\n  name: "p\n')
    assert "m.yaml:4:9:" in text and "never closed" in text


def test_fragment_without_kind() -> None:
    text = problems("containers:\n- name: c\n  image: nginx\nvolumes: []\n")
    assert "no apiVersion and kind" in text and "a pod's spec" in text


def test_unknown_kind_lists_known_kinds() -> None:
    text = problems(POD.replace("kind: Pod", "kind: Widget"))
    assert "m.yaml:2:7: kind: unknown kind 'Widget'" in text
    assert "Deployment (apps/v1)" in text


def test_kind_wrong_case_suggests() -> None:
    text = problems(POD.replace("kind: Pod", "kind: pod"))
    assert "did you mean 'Pod'?" in text


def test_api_version_mismatch() -> None:
    text = problems(POD.replace("kind: Pod", "kind: Deployment"))
    assert "m.yaml:1:13: apiVersion:" in text and "served by apiVersion 'apps/v1'" in text


def test_top_level_not_a_mapping() -> None:
    assert "expected a mapping" in problems("- a\n- b\n")
    assert "expected a mapping" in problems("just text\n")


def test_scalar_where_mapping_expected_hint() -> None:
    text = problems("apiVersion: v1\nkind: Pod\nmetadata:\n  name:p\nspec: {containers: [{name: c, image: i}]}\n")
    assert 'write "name: p"' in text


def test_json_errors() -> None:
    text = problems('{"apiVersion": "v1", "kind": "Pod",}', "x.json")
    assert "x.json:1:36: JSON syntax error" in text
    text = problems('{"apiVersion": "v1"\n "kind": "Pod"}', "x.json")
    assert "x.json:2:2:" in text and "missing comma" in text


def test_json_with_tabs_loads() -> None:
    text = '{\n\t"apiVersion": "v1",\n\t"kind": "Namespace",\n\t"metadata": {"name": "a"}\n}\n'
    assert len(load_text(text, "ns.json")) == 1


def test_document_markers_and_empty_documents() -> None:
    objs = load_text("---\n# nothing\n---\n" + POD + "...\n---\n" + POD.replace("name: p", "name: q") + "---\n")
    assert [o.pod.metadata.name for o in objs] == ["p", "q"]
    assert load_text("") == []
    assert load_text("# just a comment\n") == []


def test_positions_in_later_documents() -> None:
    text = problems(POD + "---\n" + POD.replace("image: nginx", "imag: nginx"))
    assert "m.yaml:17:5: spec.containers[0].imag" in text


def test_invalid_utf8_bytes() -> None:
    with pytest.raises(ManifestError) as info:
        load_bytes(b"apiVersion: v1\nkind: \xff\n", "b.yaml")
    assert "b.yaml:2:7: not UTF-8 text" in str(info.value)


def test_utf16_with_bom() -> None:
    assert len(load_bytes(POD.encode("utf-16"), "u.yaml")) == 1


def test_control_characters() -> None:
    assert "control character" in problems(POD.replace("name: p", "name: p\x01"))


def test_timestamps() -> None:
    ns = "apiVersion: v1\nkind: Event\nmetadata: {name: e}\ninvolvedObject: {name: p}\nfirstTimestamp: {ts}\n"
    obj = load_text(ns.replace("{ts}", "2024-01-31T12:00:00+01:00"))[0]
    assert obj.event.first_timestamp.seconds == 1706698800
    assert "RFC 3339" in problems(ns.replace("{ts}", "yesterday"))


def test_files_directories_and_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.yaml").write_text(POD)
    (tmp_path / "b.json").write_text('{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}}')
    (tmp_path / "notes.txt").write_text("ignored")
    assert [o.WhichOneof("kind") for o in load_path(tmp_path)] == ["pod", "namespace"]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(POD.encode())))
    assert len(load_path("-")) == 1
    (tmp_path / "c.yaml").write_text(POD.replace("image: nginx", "imagee: x"))
    (tmp_path / "d.yaml").write_text("kind: Pod\n")
    with pytest.raises(ManifestError) as info:
        load_paths([tmp_path, tmp_path / "missing.yaml"])
    text = str(info.value)
    assert "c.yaml:8:5" in text and "d.yaml:1:1: apiVersion: missing apiVersion" in text
    assert "missing.yaml: no such file or directory" in text


def test_from_dict() -> None:
    obj = from_dict({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}})
    assert obj == object_pb2.Object(namespace={"metadata": {"name": "x"}})
    with pytest.raises(ManifestError) as info:
        from_dict({"apiVersion": "v1", "kind": "Namespace", "metadata": {"nam": "x"}}, "api")
    assert str(info.value).startswith("api: metadata.nam: unknown field")


def test_validation_problems_are_located() -> None:
    text = problems(
        POD.replace("    image: nginx", "    image: nginx\n    volumeMounts:\n    - {name: nope, mountPath: /x}")
    )
    assert "m.yaml:10:8: spec.containers[0].volumeMounts[0].name: volume 'nope' is not declared" in text


def test_locate_maps_field_paths_to_lines() -> None:
    two = POD + "---\n" + POD
    assert locate("m.yaml", two, "spec.containers[0].image") == (8, 5)
    assert locate("m.yaml", two, "spec.containers[0].image", document=1) == (17, 5)
    assert locate("m.yaml", two, "spec.containers[0].ports[0].containerPort") == (7, 5)
    assert locate("m.yaml", "a: [", "spec") is None


def test_optional_presence_and_empty_dir() -> None:
    text = POD.replace("spec:", "spec:\n  terminationGracePeriodSeconds: 0\n  volumes: [{name: v, emptyDir: {}}]")
    obj = load_text(text)[0]
    assert obj.pod.spec.HasField("termination_grace_period_seconds")
    assert obj.pod.spec.volumes[0].HasField("empty_dir")


def test_list_kind() -> None:
    text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Namespace\n  metadata: {name: a}\n"
    assert len(load_text(text)) == 1
    bad = text.replace("metadata: {name: a}", "metadata: {nme: a}")
    assert "items[0].metadata.nme" in problems(bad)


def test_null_means_unset() -> None:
    obj = load_text(POD.replace("  name: p", "  name: p\n  labels: null\n  namespace: ~"))[0]
    assert not obj.pod.metadata.labels and obj.pod.metadata.namespace == ""


def test_merge_keys_and_anchors() -> None:
    text = POD.replace("    image: nginx", "    image: &img nginx\n  - name: d\n    image: *img")
    assert load_text(text)[0].pod.spec.containers[1].image == "nginx"


def test_field_in_the_wrong_place_says_where_it_goes() -> None:
    text = problems(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  selector: {matchLabels: {a: b}}\n"
        "  containers: []\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      replicas: 3\n"
        "      containers: [{name: c, image: i}]\n"
    )
    assert "m.yaml:6:3: spec.containers: unknown field for Deployment (it belongs to Pod)" in text
    assert "it goes at spec.template.spec.containers" in text
    assert (
        "m.yaml:10:7: spec.template.spec.replicas: unknown field for PodSpec; in a Deployment it goes at spec.replicas"
        in text
    )


def test_unsupported_persistent_volume_source() -> None:
    text = problems(
        "apiVersion: v1\nkind: PersistentVolume\nmetadata: {name: p}\nspec:\n  capacity: {storage: 1Gi}\n"
        "  accessModes: [ReadWriteOnce]\n  csi: {driver: x, volumeHandle: y}\n"
    )
    assert "m.yaml:7:3: spec.csi: field 'csi' of PersistentVolume is not supported yet by Pinnace" in text


def test_located_objects_map_server_problems_to_lines(tmp_path: Path) -> None:
    from pinnace.manifest import load_paths_located

    (tmp_path / "svc.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports: [{port: 80}]\n  clusterIP: 10.0.0.1\n"
    )
    (item,) = load_paths_located([tmp_path / "svc.yaml"])
    assert item.obj.service.spec.cluster_ip == "10.0.0.1"
    problem = item.problem("spec.clusterIP", "not in the service range 10.96.0.0/16")
    assert str(problem) == f"{tmp_path / 'svc.yaml'}:6:3: spec.clusterIP: not in the service range 10.96.0.0/16"
    assert item.position("spec.ports[0].targetPort") == (5, 11)


def test_lone_surrogates_are_refused_not_crashing() -> None:
    text = '{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a", "labels": {"\\ud800": "x"}}}'
    assert "lone surrogate" in problems(text, "x.json")
    assert "lone surrogate" in problems(text.replace('"\\ud800": "x"', '"x": "\\udc00"'), "x.json")


def test_misaligned_keys_name_the_columns_they_could_have() -> None:
    head = POD.split("  containers:")[0]
    text = problems(head + "  containers:\n  - name: c\n   image: x\n")
    assert 'm.yaml:8:4: "image" starts at column 4' in text
    assert 'column 5 (like "name" on line 7)' in text
    text = problems(head + "  containers:\n    - name: c\n      image: x\n    restartPolicy: Never\n")
    assert "m.yaml:9:5:" in text and "a key cannot follow them there" in text
    assert 'column 3 (like "containers" on line 6)' in text


def test_no_space_after_colon() -> None:
    text = problems("apiVersion: v1\nkind: Pod\nmetadata:\n  name:p\n  labels: {}\nspec: {}\n")
    assert 'm.yaml:4:3: "name:p" has no space after the colon' in text and 'write "name: p"' in text
    text = problems("apiVersion:v1\nkind:Pod\n")
    assert 'm.yaml:1:1: "apiVersion:v1"' in text and 'm.yaml:2:1: "kind:Pod"' in text
    text = problems(POD + "    ports:\n    - containerPort:80\n")
    assert 'write "containerPort: 80"' in text


def test_from_dict_of_yaml_safe_load_output() -> None:
    import yaml

    text = "apiVersion: v1\nkind: Event\nmetadata: {name: e}\ninvolvedObject: {name: p}\n"
    text += "lastTimestamp: 2024-01-31T12:00:00Z\n"
    obj = from_dict(yaml.safe_load(text))
    assert obj == load_text(text)[0]
