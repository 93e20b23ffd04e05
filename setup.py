"""Build kws_nb from settings.ini (nbdev 2's layout): every package setting lives there, none here."""
from configparser import ConfigParser
from pathlib import Path
import setuptools

here = Path(__file__).resolve().parent
config = ConfigParser(delimiters=["="])
config.read(here / "settings.ini", encoding="utf-8")
cfg = config["DEFAULT"]
for key in ("lib_name", "version", "description", "author", "author_email", "license", "min_python", "requirements"):
    if not cfg.get(key): raise SystemExit(f"settings.ini: '{key}' is missing or empty")

licenses = {"apache2": ("Apache-2.0", "OSI Approved :: Apache Software License")}
statuses = ["1 - Planning", "2 - Pre-Alpha", "3 - Alpha", "4 - Beta", "5 - Production/Stable", "6 - Mature", "7 - Inactive"]
license_id, license_classifier = licenses[cfg["license"]]
def reqs(key): return cfg.get(key, "").split()

setuptools.setup(
    name=cfg["lib_name"], version=cfg["version"], description=cfg["description"],
    long_description=(here / "README.md").read_text(encoding="utf-8"), long_description_content_type="text/markdown",
    author=cfg["author"], author_email=cfg["author_email"], license=license_id, keywords=cfg.get("keywords", ""),
    classifiers=[f"Development Status :: {statuses[int(cfg['status']) - 1]}", f"Intended Audience :: {cfg['audience']}",
                 f"License :: {license_classifier}", f"Natural Language :: {cfg['language']}",
                 "Programming Language :: Python :: 3", f"Programming Language :: Python :: {cfg['min_python']}"],
    packages=setuptools.find_packages(include=[cfg["lib_path"], f"{cfg['lib_path']}.*"]),
    include_package_data=True, zip_safe=False, python_requires=f">={cfg['min_python']}",
    install_requires=reqs("requirements"),
    extras_require={"train": reqs("train_requirements"), "dev": reqs("dev_requirements")},
    entry_points={"console_scripts": cfg.get("console_scripts", "").split(),
                  "nbdev": [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
)
