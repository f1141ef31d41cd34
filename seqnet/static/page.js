// What seqnet's pages do, shared by `seqnet serve`'s page and the ONNX bundle's in-browser
// page: read one review per line, call a `predict` function, show a label and score per
// review. Each page only says where predictions come from.

const button = document.getElementById("classify");
const errorBox = document.getElementById("error");
const table = document.getElementById("results");

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text; // textContent, never innerHTML: reviews are shown as typed
  td.className = className;
}

function showResults(texts, results) {
  const body = table.tBodies[0];
  body.replaceChildren();
  results.forEach((result, i) => {
    const row = body.insertRow();
    cell(row, texts[i], "review");
    cell(row, result.label, "label " + result.label);
    cell(row, result.score.toFixed(3), "score");
    row.dataset.score = String(result.score); // full precision, for scripts and tests
  });
  table.hidden = false;
}

async function classify(predict) {
  const texts = document.getElementById("reviews").value.split("\n")
    .map((line) => line.trim()).filter((line) => line.length > 0);
  errorBox.textContent = "";
  if (texts.length === 0) {
    errorBox.textContent = "Type at least one review.";
    return;
  }
  button.disabled = true;
  try {
    showResults(texts, await predict(texts));
  } catch (error) {
    errorBox.textContent = "Could not classify: " + error.message;
  } finally {
    button.disabled = false;
  }
}

/** Classify with `predict` (texts -> [{label, score}]) whenever the button is pressed. */
export function enableClassify(predict) {
  button.addEventListener("click", () => classify(predict));
  button.disabled = false;
}

/** Show a message in the page's error box. */
export function showError(message) {
  errorBox.textContent = message;
}
