"""`completion bash`: a bash completion script (verbs, kinds, and object names from `get -o name`)."""

from __future__ import annotations

import argparse

from pinnace.common import kinds

_SCRIPT = r"""# pinnace bash completion; load with: source <(pinnace completion bash)
_pinnace_names() {
    pinnace get "$1" -o name 2>/dev/null | sed 's|.*/||'
}
_pinnace() {
    local cur prev verb
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD-1]}"
    verb="${COMP_WORDS[1]}"
    case "$prev" in
        -f|--filename) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        -o|--output) COMPREPLY=($(compgen -W "wide yaml json name" -- "$cur")); return ;;
        -n|--namespace) COMPREPLY=($(compgen -W "$(_pinnace_names namespaces)" -- "$cur")); return ;;
    esac
    if [[ $COMP_CWORD -eq 1 ]]; then
        COMPREPLY=($(compgen -W "__VERBS__" -- "$cur")); return
    fi
    case "$verb" in
        get|describe|delete|edit|scale|explain)
            if [[ $COMP_CWORD -eq 2 ]]; then
                COMPREPLY=($(compgen -W "__KINDS__" -- "$cur"))
            else
                COMPREPLY=($(compgen -W "$(_pinnace_names "${COMP_WORDS[2]}")" -- "$cur"))
            fi ;;
        logs|exec)
            COMPREPLY=($(compgen -W "$(_pinnace_names pods)" -- "$cur")) ;;
        rollout)
            if [[ $COMP_CWORD -eq 2 ]]; then COMPREPLY=($(compgen -W "status history undo" -- "$cur")); fi ;;
        config)
            if [[ $COMP_CWORD -eq 2 ]]; then
                local acts="view current-context get-contexts use-context set-context delete-context"
                COMPREPLY=($(compgen -W "$acts" -- "$cur"))
            fi ;;
    esac
}
complete -F _pinnace pinnace
"""


def script(verbs: list[str]) -> str:
    names: set[str] = set()
    for k in kinds.KINDS:
        names.update([k.plural, k.kind.lower(), *k.short_names])
    return _SCRIPT.replace("__VERBS__", " ".join(sorted(verbs))).replace("__KINDS__", " ".join(sorted(names)))


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    c = subparsers.add_parser("completion", help="print a shell completion script (bash)")
    c.add_argument("shell", choices=["bash"])

    def run(args: argparse.Namespace) -> int:
        print(script(sorted(subparsers.choices)), end="")
        return 0

    c.set_defaults(func=run)
