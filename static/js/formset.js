// "+ Add" under a formset table: copy its empty row with the next index and
// count it in the management form, so the server sees one more form.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("button[data-formset-add]").forEach(function (button) {
    button.addEventListener("click", function () {
      var prefix = button.dataset.formsetAdd;
      var total = document.getElementById("id_" + prefix + "-TOTAL_FORMS");
      var template = document.getElementById(prefix + "-empty");
      var index = parseInt(total.value, 10);
      var row = template.innerHTML.replace(/__prefix__/g, String(index));
      document.getElementById(prefix + "-rows").insertAdjacentHTML("beforeend", row);
      total.value = String(index + 1);
      var first = document.getElementById(prefix + "-rows").lastElementChild.querySelector("input, select, textarea");
      if (first) { first.focus(); }
    });
  });
});
