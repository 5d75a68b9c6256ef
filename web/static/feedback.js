/* The student's feedback form (web/templates/feedback_form.html). Everything here is an enhancement: without
   script the form still posts, the follow-up questions simply stay visible.
   - The comment's character count follows the typing; a screen reader hears it only near the limit, not per key.
   - "What could have been better?" shows only after "Probably not" or "No". While hidden its boxes are disabled,
     so a tick left behind is not sent with another answer (the server would refuse that pairing).
   - A low star rating turns the comment's prompt into "What could have been better?". */
(function () {
  "use strict";

  var form = document.getElementById("feedback-form");
  if (!form) { return; }

  var ANNOUNCE_AT = [100, 50, 20, 0];  // characters left at which the count is spoken

  function counter() {
    var box = document.getElementById("text");
    var shown = document.getElementById("text-count");
    var spoken = document.getElementById("text-left");
    if (!box || !shown || !spoken) { return; }
    var max = parseInt(shown.getAttribute("data-max"), 10) || box.maxLength;
    var lastLeft = max - box.value.length;

    function update() {
      var left = max - box.value.length;
      shown.textContent = box.value.length + " / " + max + " characters";
      shown.classList.toggle("near-limit", left <= 20);
      ANNOUNCE_AT.forEach(function (mark) {
        if (left <= mark && lastLeft > mark) {
          spoken.textContent = left === 0 ? "Character limit reached." : left + " characters left.";
        }
      });
      lastLeft = left;
    }

    box.addEventListener("input", update);
    update();
  }

  function followUp() {
    var group = document.getElementById("improvements");
    if (!group) { return; }
    var asking = (group.getAttribute("data-follow-up") || "").split(" ");
    var hint = document.getElementById("improvements-hint");

    function update() {
      var chosen = form.querySelector("input[name='work_again']:checked");
      var show = Boolean(chosen && asking.indexOf(chosen.value) !== -1);
      group.hidden = !show;
      group.querySelectorAll("input").forEach(function (box) { box.disabled = !show; });
      if (hint) { hint.hidden = true; }  // the condition it explains is now applied for the student
    }

    form.querySelectorAll("input[name='work_again']").forEach(function (radio) {
      radio.addEventListener("change", update);
    });
    update();
  }

  function lowRatingPrompt() {
    var label = document.getElementById("text-label");
    if (!label) { return; }
    var usual = label.textContent;
    var low = label.getAttribute("data-low-text");

    function update() {
      var chosen = form.querySelector("input[name='rating']:checked");
      label.textContent = chosen && chosen.getAttribute("data-low") === "true" ? low : usual;
    }

    form.querySelectorAll("input[name='rating']").forEach(function (radio) {
      radio.addEventListener("change", update);
    });
    update();
  }

  counter();
  followUp();
  lowRatingPrompt();
}());
