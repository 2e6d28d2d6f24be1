// The time-zone select: a filter box above it, and on sign-up the browser's own zone.
// Progressive: without this script the grouped <select> works as it is.
(function () {
  "use strict";

  function normalise(text) {
    return text.toLowerCase().replace(/[_/()]/g, " ").replace(/\s+/g, " ").trim();
  }

  function enhance(select) {
    var aliases = {};
    try { aliases = JSON.parse(select.dataset.zoneAliases || "{}"); } catch (e) { aliases = {}; }
    var hint = document.getElementById(select.id + "-picked");

    var browserPick = "";
    function syncHint() {
      // The note about the browser's zone is true only while that zone is the one picked.
      if (hint && browserPick) { hint.classList.toggle("d-none", select.value !== browserPick); }
    }

    // The browser's zone, picked only where the page asks (sign-up, not a posted form).
    if (select.dataset.zonePreselect === "browser") {
      var browserZone = "";
      try { browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { browserZone = ""; }
      var wanted = aliases[browserZone] || browserZone;
      var option = wanted && select.querySelector('option[value="' + CSS.escape(wanted) + '"]');
      if (option) {
        select.value = wanted;
        browserPick = wanted;
        if (hint) {
          hint.textContent = "Picked from your browser: " + option.textContent + ".";
          hint.classList.remove("d-none");
        }
      }
    }

    // Every option with its group, kept to rebuild the list as the filter changes.
    var groups = Array.prototype.map.call(select.querySelectorAll("optgroup"), function (group) {
      return {
        label: group.label,
        options: Array.prototype.map.call(group.querySelectorAll("option"), function (option) {
          return { node: option, text: normalise(option.value + " " + option.textContent + " " + group.label) };
        })
      };
    });

    var wrapper = document.createElement("div");
    wrapper.className = "mb-2";
    var label = document.createElement("label");
    label.className = "form-label small text-muted mb-1";
    label.htmlFor = select.id + "-filter";
    label.textContent = "Search zones by city or region";
    var input = document.createElement("input");
    input.type = "search";
    input.id = select.id + "-filter";
    input.className = "form-control form-control-sm";
    input.placeholder = "Type a city or region, e.g. New York";
    input.autocomplete = "off";
    input.setAttribute("aria-controls", select.id);
    var status = document.createElement("p");
    status.className = "form-text mb-0";
    status.id = select.id + "-filter-status";
    status.setAttribute("aria-live", "polite");
    input.setAttribute("aria-describedby", status.id);
    wrapper.append(label, input, status);
    var fieldLabel = document.querySelector('label[for="' + CSS.escape(select.id) + '"]');
    (fieldLabel || select).after(wrapper);

    function apply() {
      var words = normalise(input.value).split(" ").filter(Boolean);
      var current = select.value;
      var matches = [];
      select.textContent = "";
      groups.forEach(function (group) {
        var kept = group.options.filter(function (entry) {
          return words.every(function (word) { return entry.text.indexOf(word) !== -1; });
        });
        if (!kept.length) { return; }
        var node = document.createElement("optgroup");
        node.label = group.label;
        kept.forEach(function (entry) { node.appendChild(entry.node); matches.push(entry.node); });
        select.appendChild(node);
      });
      if (!words.length) {
        select.size = 0;
        select.value = current;
        status.textContent = "";
        return;
      }
      if (!matches.length) {
        status.textContent = "No time zone matches “" + input.value + "”.";
        select.size = 0;
        return;
      }
      // The list opens while filtering; the first match is picked unless the picked one matches.
      select.size = Math.min(Math.max(matches.length, 2), 8);
      var stillThere = matches.some(function (node) { return node.value === current; });
      select.value = stillThere ? current : matches[0].value;
      status.textContent = matches.length + (matches.length === 1 ? " time zone matches" : " time zones match") +
        "; " + select.options[select.selectedIndex].textContent + " is picked.";
    }

    input.addEventListener("input", function () { apply(); syncHint(); });
    select.addEventListener("change", syncHint);
    input.addEventListener("keydown", function (event) {
      // Enter in the filter must not send the whole form; it moves to the list instead.
      if (event.key === "Enter" || event.key === "ArrowDown") {
        event.preventDefault();
        select.focus();
      }
    });
  }

  document.querySelectorAll("select[data-zone-picker]").forEach(enhance);
})();
