"""Reads what the manifest checks need from deploy/Dockerfile: its stages, the runtime stage's
apt packages, user, exposed ports, the files it puts in /usr/local/bin and its entry point.
Docker itself is not needed (or available) here.
"""
import json
import re
import shlex


class Stage:
    def __init__(self, image, name):
        self.image, self.name = image, name
        self.instructions = []  # (KEYWORD, rest of the line)


class Dockerfile:
    def __init__(self, path):
        self.path = path
        self.stages = []
        for keyword, rest in _instructions(path):
            if keyword == "FROM":
                m = re.match(r"^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?\s*$", rest, re.IGNORECASE)
                if not m:
                    raise ValueError("%s: cannot read FROM %s" % (path, rest))
                self.stages.append(Stage(m.group(1), m.group(2)))
            elif not self.stages:
                if keyword != "ARG":
                    raise ValueError("%s: %s before the first FROM" % (path, keyword))
            else:
                self.stages[-1].instructions.append((keyword, rest))
        if not self.stages:
            raise ValueError("%s: no FROM" % path)

    @property
    def runtime(self):
        return self.stages[-1]

    def apt_packages(self, stage):
        """Packages named by `apt-get install` in the stage's RUN instructions."""
        packages = []
        for keyword, rest in stage.instructions:
            if keyword != "RUN":
                continue
            for command in re.split(r"&&|;|\|\|", rest):
                words = shlex.split(command)
                for i, w in enumerate(words):
                    if w in ("apt-get", "apt") and "install" in words[i + 1:]:
                        start = words.index("install", i) + 1
                        packages += [p for p in words[start:] if not p.startswith("-")]
                        break
        return packages

    def install_options(self, stage):
        return " ".join(rest for k, rest in stage.instructions if k == "RUN")

    def user(self, stage):
        users = [rest.strip() for k, rest in stage.instructions if k == "USER"]
        return users[-1] if users else None

    def exposed_ports(self, stage):
        ports = set()
        for k, rest in stage.instructions:
            if k == "EXPOSE":
                ports |= {int(p.split("/")[0]) for p in rest.split()}
        return ports

    def installed_files(self, stage, directory="/usr/local/bin"):
        """Paths under `directory` that COPY instructions create."""
        files = set()
        for k, rest in stage.instructions:
            if k != "COPY":
                continue
            words = [w for w in _copy_words(rest) if not w.startswith("--")]
            sources, dest = words[:-1], words[-1]
            if dest.rstrip("/") == directory:
                files |= {directory + "/" + s.rstrip("/").split("/")[-1] for s in sources}
            elif dest.startswith(directory + "/"):
                files.add(dest)
        return files

    def entrypoint(self, stage):
        entries = [rest for k, rest in stage.instructions if k == "ENTRYPOINT"]
        if not entries:
            return None
        text = entries[-1].strip()
        return json.loads(text) if text.startswith("[") else ["/bin/sh", "-c", text]


def _copy_words(rest):
    rest = rest.strip()
    if rest.startswith("["):
        return json.loads(rest)
    return shlex.split(rest)


def _instructions(path):
    """(KEYWORD, arguments) per instruction, continuation lines joined, comments dropped."""
    with open(path) as f:
        lines = f.read().splitlines()
    current = ""
    for line in lines:
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        keyword, _, rest = current.partition(" ")
        yield keyword.upper(), rest.strip()
        current = ""
    if current:
        keyword, _, rest = current.partition(" ")
        yield keyword.upper(), rest.strip()
