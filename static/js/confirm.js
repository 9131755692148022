// Every button that changes a rollout states what it will do and asks first.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("button[data-confirm]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      if (!window.confirm(button.dataset.confirm)) {
        event.preventDefault();
      }
    });
  });
});
