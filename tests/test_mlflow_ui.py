"""What a user opens after `make pipeline`: the MLflow UI over the tiny build's tracking server,
in headless Chromium (screenshots under test-artifacts/)."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from latentlab.tracking import KIND_TAG, TRAINING_KIND
from tests.support.browser import chromium, keep_screenshot, needs_chromium, wait_for_text
from tests.test_tracking import STAGES, runs_of

pytestmark = [pytest.mark.slow, needs_chromium]

# The codegen id MLflow's runs table gives the button that expands a parent run's children.
EXPAND = '[data-component-id$="runnamecellrenderer.tsx_46"]'


def test_the_mlflow_ui_shows_the_pipeline_as_training_runs(built, tmp_path):
    from selenium.webdriver.common.by import By

    client = built.server.client()
    experiment = client.get_experiment_by_name("latentlab")
    assert experiment.tags[KIND_TAG] == TRAINING_KIND
    parent = client.get_run(built.parent_run_id)
    children = {r.data.tags["latentlab.stage"]: r for r in runs_of(client, built.parent_run_id)}
    gan = children["train_gan"]
    version = next(v.version for v in client.search_model_versions("name='latentlab-gan-generator'")
                   if v.run_id == gan.info.run_id)
    dataset = f"digits 8×8×1 train ({gan.data.tags['latentlab.data_hash']})"
    page = f"{built.server.url}/#/experiments/{experiment.experiment_id}"
    with chromium(tmp_path / "chromium", width=1920) as driver:
        # The experiment opens on its training runs (not on the GenAI overview: traces, tokens).
        driver.get(f"{page}?workflowType=machine_learning")
        text = wait_for_text(driver, "Runs", "Dataset", "Duration", parent.info.run_name)
        assert "/runs" in driver.current_url and "Token Usage" not in text
        # This pipeline execution: its parent, then its stage runs, with datasets and models.
        query = urlencode({"workflowType": "machine_learning",
                           "searchFilter": f"tags.`mlflow.parentRunId` = '{built.parent_run_id}'"})
        driver.get(f"{page}/runs?{query}")
        wait_for_text(driver, parent.info.run_name, f"{len(children) + 1} matching runs")
        driver.find_element(By.CSS_SELECTOR, EXPAND).click()
        text = wait_for_text(driver, *STAGES, dataset, "latentlab-gan-generator", f"v{version}")
        keep_screenshot(driver, "mlflow-runs")
        # the Dataset column names the training data of each training stage (not of `download`)
        assert text.count(dataset) == 1 + sum(
            bool(r.inputs.dataset_inputs) for r in children.values())
