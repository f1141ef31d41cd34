// What seqnet's pages do, shared by `seqnet serve`'s page and the ONNX bundle's in-browser
// page: read one text per line, call a `predict` function, show per text its label (the class
// name), score, a bar per class probability, and a warning if the model knew none of its
// words. Each page only says where predictions come from.

const button = document.getElementById("classify");
const errorBox = document.getElementById("error");
const table = document.getElementById("results");
const UNKNOWN_WORDS =
  "The model knows none of this text's words: its label says nothing about the text.";

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text; // textContent, never innerHTML: texts are shown as typed
  td.className = className;
  return td;
}

/** One small bar per class: its name, a bar as long as its probability, the number. */
function probabilityBars(td, classes, probabilities, label) {
  for (const name of classes) {
    const probability = probabilities[name];
    const line = document.createElement("div");
    line.className = name === label ? "class chosen" : "class";
    line.dataset.class = name;
    line.dataset.probability = String(probability); // full precision, for scripts and tests
    const title = document.createElement("span");
    title.className = "name";
    title.textContent = name;
    const bar = document.createElement("span");
    bar.className = "bar";
    const fill = document.createElement("span");
    fill.className = "fill";
    fill.style.width = `${(100 * probability).toFixed(1)}%`;
    bar.append(fill);
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = probability.toFixed(3);
    line.append(title, bar, value);
    td.append(line);
  }
}

function showResults(texts, results, classes) {
  const body = table.tBodies[0];
  body.replaceChildren();
  results.forEach((result, i) => {
    const row = body.insertRow();
    const text = cell(row, texts[i], "review");
    if (result.known_words === 0) {
      row.classList.add("unknown");
      const warning = document.createElement("div");
      warning.className = "warning";
      warning.setAttribute("role", "note");
      warning.textContent = UNKNOWN_WORDS;
      text.append(warning);
    }
    cell(row, result.label, "label");
    cell(row, result.score.toFixed(3), "score");
    const names = classes ?? Object.keys(result.probabilities);
    probabilityBars(cell(row, "", "probabilities"), names, result.probabilities, result.label);
    row.dataset.label = result.label;
    row.dataset.score = String(result.score); // full precision, for scripts and tests
    row.dataset.knownWords = String(result.known_words);
  });
  table.hidden = false;
}

async function classify(predict, classes) {
  const texts = document.getElementById("reviews").value.split("\n")
    .map((line) => line.trim()).filter((line) => line.length > 0);
  errorBox.textContent = "";
  if (texts.length === 0) {
    errorBox.textContent = "Type at least one text.";
    return;
  }
  button.disabled = true;
  try {
    showResults(texts, await predict(texts), classes);
  } catch (error) {
    errorBox.textContent = "Could not classify: " + error.message;
  } finally {
    button.disabled = false;
  }
}

/** Name the classes in the page's hint. */
function showClasses(classes) {
  const hint = document.getElementById("classes");
  if (hint && classes) hint.textContent = `Classes: ${classes.join(", ")}.`;
}

/** Classify with `predict` (texts -> [{label, score, known_words, probabilities: {class: p}}])
 * whenever the button is pressed; `classes` (the run's, in order) orders the bars. */
export function enableClassify(predict, classes) {
  showClasses(classes);
  button.addEventListener("click", () => classify(predict, classes));
  button.disabled = false;
}

/** Show a message in the page's error box. */
export function showError(message) {
  errorBox.textContent = message;
}
