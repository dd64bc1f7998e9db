// A lesson page: every preset gets a "show the computation" button that runs it live (a preset the
// playground refuses, like the seeds' 7×7 / stride 3, shows why without asking again); the
// self-checks at the end ask about real layers and are graded by the server.
import * as api from "../api.js";
import { explainError, runAndShow, showRefusal } from "./preset-runner.js";
import { mountSelfChecks } from "./self-checks.js";

for (const block of document.querySelectorAll(".preset[data-preset]")) {
  const button = block.querySelector(".run-preset");
  const target = block.querySelector(".preset-result");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const preset = await api.getPreset(block.dataset.preset);
      if (preset.refused) await showRefusal(target, preset.operation, preset.request, preset.refused);
      else await runAndShow(target, preset.operation, preset.request, { highlights: preset.highlights });
    } catch (error) {
      target.replaceChildren(explainError(error));
    } finally {
      button.disabled = false;
    }
  });
}

mountSelfChecks(document.getElementById("self-checks"));
