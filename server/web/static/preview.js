// The campaign form's preview follows what is typed (without JavaScript the "Preview" button shows it).
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-preview]").forEach(function (target) {
    var field = document.getElementById(target.getAttribute("data-preview"));
    if (!field) return;
    field.addEventListener("input", function () {
      target.textContent = field.value;
    });
  });
});
